# Session 23 final checks (H200), code fbeca02: 7B CUDA vs CPU on 32g and 128g (the layouts
# whose kernel changed), and the service stage (llamad --backend=cuda + llamactl end to end
# on two fixture branches).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b check7b" LAYOUTS="gptq-4bit-32g-actorder_True gptq-4bit-128g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
STAGES="service" timeout 150 bash $S >/dev/null 2>&1; echo "service exit $?"
grep -vE "^\[.*bench " $OUT/summary.txt | grep -E "7b|service|llamad|llamactl|generate"
