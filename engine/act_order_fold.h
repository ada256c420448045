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
// step (gate and up, 88 KB at 7B). The fold gains 4.5% (32g) to 6.1% (128g) decode on an
// H200 (tests/bench/RESULTS.md, session 9). The CUDA backend applies it at upload when
// CudaOptions::fold_down_permutation is set (the default).
#pragma once

#include "engine/weights.h"

namespace llama {

// Folds when down is GPTQ with a permutation and gate and up both map to down's K inputs;
// returns whether it did (otherwise nothing changes).
bool FoldDownPermutation(Linear& gate, Linear& up, Linear& down);

}  // namespace llama
