#!/usr/bin/env bash
# Compares the PTX of one kernel file between a git revision and the working tree, kernel by
# kernel, on the development machine (no GPU needed): the check that a change left a default
# kernel's code as it was (the warp GEMV's speed depends on the exact shape of its loop:
# tests/bench/RESULTS.md, session 16).
#   deploy/gpu/ptx_diff.sh REV kernels/gptq_gemv_warp.cu [name-regex]
# Prints, per .entry present on both sides (and matching name-regex), "same" or "DIFF" with
# the number of changed lines, then the entries found on one side only (a new template
# parameter renames a kernel: compare those bodies by hand). Anonymous-namespace and
# internal-linkage hashes and branch-label numbers are normalized away. A kernel whose PTX
# differs is also compared as sm_90 machine code (its .text section in a cubin, byte for
# byte): "DIFF n lines, sass same" is a change ptxas undid (e.g. registers renumbered), which
# runs the same instructions and needs no device A/B. Exit 0 when every common entry's machine
# code is the same, 1 otherwise. PTX_DIFF_RENAME="regex=>replacement" rewrites the working
# tree's kernel names first (a template parameter added with a default: compare the default
# instantiation under its old name), e.g. PTX_DIFF_RENAME='ILb([01])ELb0EE=>ILb\1EE'.
set -euo pipefail
REV=${1:?revision}
FILE=${2:?kernel .cu file}
FILTER=${3:-.}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
git archive "$REV" kernels | tar -x -C "$TMP"
ptx() {  # root, output
  "$NVCC" -I"$1" -O3 -DNDEBUG --generate-code=arch=compute_90,code=[compute_90,sm_90] -Xcompiler=-fPIC \
    -std=c++17 -x cu -ptx "$1/$FILE" -o "$2"
}
cubin() {  # root, output
  "$NVCC" -I"$1" -O3 -DNDEBUG --generate-code=arch=compute_90,code=sm_90 -Xcompiler=-fPIC \
    -std=c++17 -x cu -cubin "$1/$FILE" -o "$2"
}
ptx "$TMP" "$TMP/old.ptx"
ptx "$PWD" "$TMP/new.ptx"
cubin "$TMP" "$TMP/old.cubin"
cubin "$PWD" "$TMP/new.cubin"
python3 - "$TMP/old.ptx" "$TMP/new.ptx" "$FILTER" "$TMP/old.cubin" "$TMP/new.cubin" <<'EOF'
import os, re, struct, sys, difflib

RENAME = os.environ.get('PTX_DIFF_RENAME', '')

def renamed(text):
    if not RENAME:
        return text
    pat, rep = RENAME.split('=>', 1)
    return re.sub(pat, rep, text)

def texts(path, rename=False):
    """Kernel name -> bytes of its .text section in an ELF64 cubin."""
    d = open(path, 'rb').read()
    shoff = struct.unpack_from('<Q', d, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', d, 0x3a)
    hdrs = [struct.unpack_from('<IIQQQQIIQQ', d, shoff + i * shentsize) for i in range(shnum)]
    names = hdrs[shstrndx][4]
    out = {}
    for h in hdrs:
        name = d[names + h[0]:d.index(b'\0', names + h[0])].decode()
        if name.startswith('.text.'):
            key = norm(name[len('.text.'):])
            out[renamed(key) if rename else key] = d[h[4]:h[4] + h[5]]
    return out

def norm(name):
    name = re.sub(r'_GLOBAL__N__[0-9a-f_]+', 'ANON', name)
    return re.sub(r'_INTERNAL_[0-9a-f]+_', '_INTERNAL_', name)

def entries(path, rename=False):
    text = norm(open(path).read())  # anonymous-namespace and internal-linkage names hash the path
    if rename:
        text = renamed(text)
    out = {}
    for m in re.finditer(r'\.entry (\S+)\(', text):
        body = text[m.start():text.find('\n}\n', m.start())]
        out[m.group(1)] = re.sub(r'\$L__BB\d+_', '$L__BB_', body)
    return out

old, new, pattern = entries(sys.argv[1]), entries(sys.argv[2], True), re.compile(sys.argv[3])
old_sass, new_sass = texts(sys.argv[4]), texts(sys.argv[5], True)
changed = 0
for name in sorted(set(old) & set(new)):
    if not pattern.search(name):
        continue
    a, b = old[name].splitlines(), new[name].splitlines()
    diff = [l for l in difflib.unified_diff(a, b, lineterm='', n=0) if l[:1] in '+-' and l[:3] not in ('+++', '---')]
    if not diff:
        print('same ' + name)
        continue
    sass_same = name in old_sass and old_sass.get(name) == new_sass.get(name)
    changed += not sass_same
    print('DIFF %d lines, sass %s %s' % (len(diff), 'same' if sass_same else 'DIFF', name))
for side, names in (('only before', set(old) - set(new)), ('only now', set(new) - set(old))):
    for name in sorted(n for n in names if pattern.search(n)):
        print('%s: %s' % (side, name))
sys.exit(1 if changed else 0)
EOF
