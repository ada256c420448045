// Act-order folding: down_proj's act-order permutation moved into the output columns of
// gate_proj and up_proj, so that no backend has to gather down's input.
//
// down's stored row k reads input P[k] (GptqLinear::perm). Reordering the output columns of
// gate and up by P (new column j = old column P[j]) makes gate|up produce their outputs in
// down's stored order; SwiGLU is elementwise, so its output is then exactly down's permuted
// input, and down's permutation becomes the identity. Each column is computed by the same
// arithmetic as before, only elsewhere: a backend gives the same bits with or without the
// fold (tests/engine/act_order_fold_test.cc checks the CPU backend's logits).
//
// Why: a GEMV gathering down's input reads 2 x 11008 fp32 values at random positions per
// step (gate and up, 88 KB at 7B), likely too much to stay in L1; act-order decode runs 16%
// slower than `main` at equal bytes (tests/bench/RESULTS.md, session 8; this fold's share of
// that is not measured yet). The CUDA backend applies it at upload when
// CudaOptions::fold_down_permutation is set.
#pragma once

#include "engine/weights.h"

namespace llama {

// Folds when down is GPTQ with a permutation and gate and up both map to down's K inputs;
// returns whether it did (otherwise nothing changes).
bool FoldDownPermutation(Linear& gate, Linear& up, Linear& down);

}  // namespace llama
