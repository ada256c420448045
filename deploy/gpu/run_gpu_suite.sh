#!/usr/bin/env bash
# Runs the CUDA checks and benchmarks on the GPU machine from prebuilt binaries carried in
# .carry/ (made by deploy/gpu/prepare_carry.sh; bin.tar.xz: test binaries, llama_bench,
# gemv_bench, make_checkpoint, unpacked into $WORK/bin; lib/: non-system shared libs;
# lib-svc.tar.xz: the service binaries' other libraries, unpacked into $WORK/lib-svc;
# fixtures/: a copy of ../shared/fixtures). Logs go to $OUT (at most 8 files come back).
#
#   STAGES="unit sanitize make7b check7b variants bench ncu" LAYOUTS="main ..." \
#     bash deploy/gpu/run_gpu_suite.sh
#
# Stages: unit (kernel + fixture gtests), sanitize (compute-sanitizer memcheck over them),
# gemv (gemv_bench: decode GEMV GB/s per kernel variant), gemm (gemm_bench: cuBLAS prefill
# GEMMs, fp32 vs fp16 output),
# make7b (synthetic Llama-2-7B checkpoints with the Llama-2 tokenizer), check7b (CUDA vs CPU
# per layout), variants (all layouts resident on one GPU), bench (llama_bench per layout),
# ab (bench of the first layout with PDL / graphs off), ncu_gemv (warp-state sections of the
# warp GEMV under gemv_bench), abx (llama_bench --ab "$AB_SETS" on the
# first layout: many sets, one load), ncu_attn (ncu sections of the decode-attention kernels),
# ncu (per-kernel breakdown of one
# decode step, first layout), ncu_prefill (per-kernel times of one 2048-token prefill),
# service (llamad --backend=cuda + llamactl end to end on two fixture branches).
set -u
ROOT=$(pwd)
CARRY=${CARRY:-$ROOT/.carry}
OUT=${OUT:-/tmp/gpu_out}
WORK=${WORK:-/tmp/llama_gpu}
STAGES=${STAGES-"unit sanitize make7b check7b variants bench ab ncu"}  # set but empty: no stage (only the unpacking)
ALL_LAYOUTS="main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True gptq-4bit-128g-actorder_True"
LAYOUTS=${LAYOUTS:-$ALL_LAYOUTS}
BENCH_ARGS=${BENCH_ARGS:-""}
export LD_LIBRARY_PATH=$CARRY/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export LLAMA_FIXTURES_DIR=$CARRY/fixtures
BIN=$CARRY/bin
if [ -f "$CARRY/bin.tar.xz" ]; then  # prepare_carry.sh packs the binaries
  BIN=$WORK/bin
  mkdir -p "$WORK" && tar -C "$WORK" -xJf "$CARRY/bin.tar.xz"
fi
LIB_SVC=$CARRY/lib-svc
if [ -f "$CARRY/lib-svc.tar.xz" ]; then
  LIB_SVC=$WORK/lib-svc
  mkdir -p "$WORK" && tar -C "$WORK" -xJf "$CARRY/lib-svc.tar.xz"
fi
mkdir -p "$OUT" "$WORK"
SUMMARY=$OUT/summary.txt
has() { [[ " $STAGES " == *" $1 "* ]]; }
note() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }

note "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
UNIT_TESTS=${UNIT_TESTS:-"small_kernels_test sampling_test gptq_matmul_test attention_test cuda_fixture_test cuda_errors_test long_context_test"}

if has unit; then
  for t in $UNIT_TESTS; do
    "$BIN/$t" --gtest_brief=0 >>"$OUT/unit.log" 2>&1
    note "unit $t: exit $? ($(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$OUT/unit.log" | tail -3 | tr '\n' ' '))"
  done
fi

if has sanitize; then
  # SANITIZE_TESTS / SANITIZE_FILTER narrow it (default: every unit test binary, all tests).
  for t in ${SANITIZE_TESTS:-$UNIT_TESTS}; do
    filter=${SANITIZE_FILTER:-'*'}
    # memcheck slows kernels ~50x: the CPU references at 7B shapes dominate, keep a few.
    [ "$t" = gptq_matmul_test ] && filter='*K64*:*K192*:*K4096_N4096_G64*:Dense*'
    compute-sanitizer --tool memcheck --leak-check full --error-exitcode 99 "$BIN/$t" --gtest_filter="$filter" \
      >>"$OUT/sanitizer.log" 2>&1
    note "memcheck $t: exit $? ($(grep -E 'ERROR SUMMARY' "$OUT/sanitizer.log" | tail -1))"
  done
fi

if has gemv; then
  # GEMV kernels alone on the 7B projection shapes: achieved GB/s per variant (GEMV_ARGS).
  IFS=';' read -r -a shapes <<<"${GEMV_SHAPES:---group 128;--group 32 --act_order}"
  for args in "${shapes[@]}"; do
    "$BIN/gemv_bench" $args ${GEMV_ARGS:-} >>"$OUT/gemv.log" 2>&1
    note "gemv_bench $args: exit $?"
  done
  grep -E "^device|layer" "$OUT/gemv.log" | tee -a "$SUMMARY"
fi

if has gemm; then
  # cuBLAS prefill GEMMs alone on the 7B projection shapes: fp32 vs fp16 output (GEMM_ROWS).
  for rows in ${GEMM_ROWS:-2048 512}; do
    "$BIN/gemm_bench" --rows "$rows" ${GEMM_ARGS:-} 2>&1 | tee -a "$SUMMARY"
  done
fi

if has make7b; then
  for l in $LAYOUTS; do
    if [ ! -f "$WORK/7b/$l/config.json" ]; then
      start=$(date +%s)
      "$BIN/make_checkpoint" --preset llama2-7b --layout "$l" --seed 7 \
        --tokenizer "$CARRY/fixtures/llama2-tokenizer/tokenizer.model" --out "$WORK/7b/$l" >>"$OUT/make7b.log" 2>&1
      note "make_checkpoint $l: exit $? in $(( $(date +%s) - start )) s, $(du -sh "$WORK/7b/$l" | cut -f1)"
    fi
  done
fi

if has check7b; then
  for l in $LAYOUTS; do
    LLAMA_SYNTHETIC_7B_DIR=$WORK/7b/$l "$BIN/synthetic_7b_test" --gtest_filter='*CudaMatchesCpu*' >>"$OUT/check7b.log" 2>&1
    note "7b cuda-vs-cpu $l: exit $? $(grep -E 'rel' "$OUT/check7b.log" | tail -9 | awk '{print $NF}' | tr '\n' ' ')"
  done
fi

if has variants; then
  dirs=""
  for l in $LAYOUTS; do dirs="$dirs:$WORK/7b/$l"; done
  LLAMA_SYNTHETIC_7B_DIRS=${dirs#:} "$BIN/synthetic_7b_test" --gtest_filter='*AllVariants*' >>"$OUT/check7b.log" 2>&1
  note "all variants at once: exit $?"
  grep '\[ variants \]' "$OUT/check7b.log" | tee -a "$SUMMARY"
fi

if has bench; then
  for l in $LAYOUTS; do
    echo "=== $l" >>"$OUT/bench.log"
    "$BIN/llama_bench" --model "$WORK/7b/$l" --backend cuda $BENCH_ARGS >>"$OUT/bench.log" 2>&1
    note "bench $l: exit $?"
  done
  cat "$OUT/bench.log" >>"$SUMMARY"
fi

if has ab; then
  # Before/after switches on the first layout (AB_FLAGS, ;-separated): each speed change off.
  l=${LAYOUTS%% *}
  IFS=';' read -r -a ab_list <<<"${AB_FLAGS:---mma=false;--mma=false --pdl=false;--mma=false --pdl=false --graphs=false}"
  for flags in "${ab_list[@]}"; do
    echo "=== $l $flags" >>"$OUT/bench.log"
    "$BIN/llama_bench" --model "$WORK/7b/$l" --backend cuda $BENCH_ARGS $flags --long_context 0 >>"$OUT/bench.log" 2>&1
    note "bench $l $flags: exit $?"
    grep -A8 "^=== $l $flags" "$OUT/bench.log" | grep -E "decode|prefill|first" >>"$SUMMARY"
  done
fi

if has abx; then
  # A/B sets in one process (llama_bench --ab; the checkpoint loads once): AB_SETS, ;-separated.
  l=${LAYOUTS%% *}
  echo "=== $l --ab" >>"$OUT/bench.log"
  "$BIN/llama_bench" --model "$WORK/7b/$l" --backend cuda $BENCH_ARGS --ab "${AB_SETS:-}" >"$WORK/ab.log" 2>&1
  note "bench $l --ab: exit $?"
  cat "$WORK/ab.log" >>"$OUT/bench.log"
  # This run's table only (several abx runs may share one $OUT).
  sed -n '/^A\/B set/,$p' "$WORK/ab.log" | tee -a "$SUMMARY"
fi

if has ncu_attn; then
  # ncu sections of the decode-attention kernels, fused and not (NCU_ATTN_FLAGS: more flags).
  l=${LAYOUTS%% *}
  for f in "" "--fuse_rope_attention=false"; do
    ncu --profile-from-start off --graph-profiling node -k regex:Attention --launch-count 2 --cache-control none \
      --clock-control none --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
      --section MemoryWorkloadAnalysis "$BIN/llama_bench" --model "$WORK/7b/$l" --backend cuda --profile_step $f \
      ${NCU_ATTN_FLAGS:-} >>"$OUT/ncu_attn.txt" 2>&1
    note "ncu attention $f: exit $?"
  done
  grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Block Limit" "$OUT/ncu_attn.txt" | tee -a "$SUMMARY"
fi

if has ncu_gemv; then
  # Where the warp GEMV's warps stall (NCU_GEMV_ARGS: gemv_bench shape flags): one layer's four
  # GEMVs (q|k|v, o, gate|up, down) after a warm-up layer.
  ncu -k regex:GptqGemvWarpKernel --launch-skip 4 --launch-count 4 --section SpeedOfLight --section WarpStateStats \
    --section SchedulerStats --section Occupancy --section InstructionStats "$BIN/gemv_bench" \
    ${NCU_GEMV_ARGS:---group 32 --act_order} --variants warprms:32 --repeat 1 >>"$OUT/ncu_gemv.txt" 2>&1
  note "ncu gemv ${NCU_GEMV_ARGS:-}: exit $?"
  grep -E "Duration|DRAM Throughput|Stall|Issued Warp|Eligible Warps|Active Warps Per|Executed Ipc A" \
    "$OUT/ncu_gemv.txt" | tee -a "$SUMMARY"
fi

if has ncu; then
  l=${LAYOUTS%% *}
  ncu --profile-from-start off --graph-profiling node --csv \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
    "$BIN/llama_bench" --model "$WORK/7b/$l" --backend cuda --profile_step >"$OUT/ncu_$l.csv" 2>>"$OUT/ncu.log"
  note "ncu $l: exit $?"
  python3 "$ROOT/deploy/gpu/ncu_breakdown.py" "$OUT/ncu_$l.csv" 2>&1 | tee -a "$SUMMARY"
fi

if has ncu_prefill; then
  # NCU_PREFILL_FLAGS: e.g. "--clock-control none --cache-control none" (boost clocks, warm
  # caches: kernel times as the benchmark sees them); NCU_LAYOUTS: layouts to profile.
  for l in ${NCU_LAYOUTS:-${LAYOUTS%% *}}; do
    ncu --profile-from-start off --csv ${NCU_PREFILL_FLAGS:-} \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
      "$BIN/llama_bench" --model "$WORK/7b/$l" --backend cuda --profile_prefill 2048 >"$WORK/ncu_prefill.csv" 2>>"$OUT/ncu.log"
    note "ncu prefill 2048 $l ${NCU_PREFILL_FLAGS:-}: exit $?"
    python3 "$ROOT/deploy/gpu/ncu_breakdown.py" "$WORK/ncu_prefill.csv" 2>&1 | tee -a "$SUMMARY"
  done
fi
if has service; then
  # llamad --backend=cuda end to end: the local test hub (tests/hub/hub.py, stdlib Python)
  # serves two fixture branches on loopback, llamad fetches both and loads them on the GPU,
  # llamactl generates from each; the text must equal the fixtures' greedy reference (what
  # tests/services/binaries_test.cc checks on the CPU backend); SIGTERM must exit 0.
  F=$CARRY/fixtures
  B2=gptq-4bit-32g-actorder_True
  SVC_LD=$LIB_SVC:$CARRY/lib:/usr/local/cuda/lib64
  rm -rf "$WORK/hub.json" "$WORK/hfcache"
  python3 "$ROOT/tests/hub/hub.py" --port-file "$WORK/hub.json" \
    --repo "TheBloke/Llama-2-7b-Chat-GPTQ=main:$F/stories260K-GPTQ/main,$B2:$F/stories260K-GPTQ/$B2" \
    >>"$OUT/service.log" 2>&1 &
  hub_pid=$!
  for i in $(seq 100); do [ -s "$WORK/hub.json" ] && break; sleep 0.1; done
  endpoint=$(python3 -c "import json; print(json.load(open('$WORK/hub.json'))['endpoint'])")
  LD_LIBRARY_PATH=$SVC_LD "$BIN/llamad" --listen=127.0.0.1:50151 --metrics_listen=127.0.0.1:0 \
    --cache_dir="$WORK/hfcache" --hub_endpoint="$endpoint" --variants=main,$B2 --default_variant=main \
    --backend=${SERVICE_BACKEND:-cuda} >>"$OUT/service.log" 2>&1 &
  d_pid=$!
  ctl() { LD_LIBRARY_PATH=$SVC_LD "$BIN/llamactl" --server=127.0.0.1:50151 "$@"; }
  for i in $(seq 300); do  # bounded: ~60 s for fetch + load of both
    [ "$(ctl list --output json 2>/dev/null | grep -o '"ready"' | wc -l)" = 2 ] && break
    sleep 0.2
  done
  ctl list --output json >>"$OUT/service.log" 2>&1
  note "service: llamad --backend=${SERVICE_BACKEND:-cuda} $(ctl list 2>&1 | tr '\n' ' ' | cut -c1-200)"
  for v in main $B2; do
    got="Once upon a time$(ctl --variant=$v --max_new_tokens=32 generate Once upon a time 2>>"$OUT/service.log")"
    want=$(python3 -c "import json; print(json.load(open('$F/stories260K-reference/references.json'))['references']['$v']['greedy_once_upon_a_time_32_text'])")
    if [ "$got" = "$want" ]; then note "service ${SERVICE_BACKEND:-cuda} $v: generated text equals the greedy reference"
    else note "service ${SERVICE_BACKEND:-cuda} $v: MISMATCH"; printf 'got:  %s\nwant: %s\n' "$got" "$want" >>"$OUT/service.log"; fi
  done
  kill -TERM $d_pid; wait $d_pid
  note "service: llamad exit status after SIGTERM: $?"
  # The local path too: llamactl run (engine Generate, greedy steps picked on the device).
  for v in main $B2; do
    got=$(LD_LIBRARY_PATH=$SVC_LD "$BIN/llamactl" run --model "$F/stories260K-GPTQ/$v" --backend=cuda \
      --max_new_tokens=32 --prompt "Once upon a time" 2>>"$OUT/service.log")
    want=$(python3 -c "import json; print(json.load(open('$F/stories260K-reference/references.json'))['references']['$v']['greedy_once_upon_a_time_32_text'])")
    if [ "$got" = "$want" ]; then note "llamactl run cuda $v: text equals the greedy reference"
    else note "llamactl run cuda $v: MISMATCH"; printf 'got:  %s\nwant: %s\n' "$got" "$want" >>"$OUT/service.log"; fi
  done
  kill $hub_pid 2>/dev/null
fi
note "done"
