# Session 24 run 6 (H200), run 2's binaries (default = code 782f46a): 7B CUDA vs CPU on 32g,
# the one layout not checked since session 23's o_proj change (91884f2).
S=deploy/gpu/run_gpu_suite.sh
export OUT=${OUT:-/tmp/gpu_out}
STAGES="make7b check7b" LAYOUTS="gptq-4bit-32g-actorder_True" bash $S >/dev/null
grep -E "7b cuda" $OUT/summary.txt
