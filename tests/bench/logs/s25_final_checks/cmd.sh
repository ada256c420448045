# Session 25 final checks (H200), code d59333a (the session's final engine and kernel code):
# all 7 CUDA unit-test binaries, 7B CUDA vs CPU on main and 32g, the service stage.
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="unit" bash $S >/dev/null
grep -E "FAILED|Failure" $OUT/unit.log | head -10; grep -E "unit" $OUT/summary.txt | cut -c1-110
STAGES="make7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
STAGES="check7b" LAYOUTS="main gptq-4bit-32g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
STAGES="service" timeout 150 bash $S >/dev/null 2>&1; echo "service exit $?"
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "service|llamad|llamactl|generate"
