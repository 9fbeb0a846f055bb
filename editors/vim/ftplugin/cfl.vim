" Vim filetype plugin for CFL, the typed configuration language of cfglang.
if exists('b:did_ftplugin')
  finish
endif
let b:did_ftplugin = 1

setlocal commentstring=#\ %s
setlocal comments=:##,:#
setlocal formatoptions-=t formatoptions+=croql
setlocal expandtab shiftwidth=2 softtabstop=2
setlocal iskeyword=@,48-57,_
setlocal suffixesadd=.cfl

let b:undo_ftplugin = 'setlocal commentstring< comments< formatoptions< expandtab< '
      \ . 'shiftwidth< softtabstop< iskeyword< suffixesadd<'
