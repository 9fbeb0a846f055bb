#!/bin/sh
# Headless test of editors/vim: exits 0 when every check in check.vim passes, 1 otherwise.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
exec vim -Nu NONE -i NONE -es \
  --cmd "set runtimepath^=$root" \
  --cmd 'filetype plugin indent on' \
  --cmd 'syntax on' \
  -c "source $here/check.vim" \
  -c 'cquit!'
