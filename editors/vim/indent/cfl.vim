" Vim indent file for CFL: one level per open `{`, `[` or `(`.
if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal autoindent
setlocal indentexpr=GetCflIndent(v:lnum)
setlocal indentkeys=0{,0},0],0),!^F,o,O

let b:undo_indent = 'setlocal autoindent< indentexpr< indentkeys<'

if exists('*GetCflIndent')
  finish
endif

" The line without strings and its comment, so brackets inside them do not count.
function! s:Code(line) abort
  let l = substitute(a:line, '\\.', '', 'g')
  let l = substitute(l, 'r\?"\%([^"]\)*"', '""', 'g')
  return substitute(l, '#.*$', '', '')
endfunction

" Opening minus closing brackets of a line, not counting closers at its start (those
" already dedented the line itself).
function! s:Balance(line) abort
  let code = s:Code(a:line)
  let lead = matchstr(code, '^\s*[\]})]*')
  let rest = code[len(lead):]
  return len(substitute(rest, '[^\[{(]', '', 'g'))
        \ - len(substitute(rest, '[^\]})]', '', 'g'))
endfunction

function! s:InMultilineString(lnum) abort
  if !exists('g:syntax_on')
    return 0
  endif
  let name = synIDattr(synID(a:lnum, 1, 1), 'name')
  return name =~# 'cflMultiString\|cflRawMultiString'
endfunction

function! GetCflIndent(lnum) abort
  if s:InMultilineString(a:lnum)
    return -1
  endif
  let prev = prevnonblank(a:lnum - 1)
  " The last line of a multi-line string: indent from the line that opened it.
  while prev > 0 && s:InMultilineString(prev)
    let prev = prevnonblank(prev - 1)
  endwhile
  if prev == 0
    return 0
  endif
  let ind = indent(prev)
  let delta = s:Balance(getline(prev))
  if delta > 0
    let ind += shiftwidth()
  elseif delta < 0
    let ind += delta * shiftwidth()
  endif
  if getline(a:lnum) =~# '^\s*[\]})]'
    let ind -= shiftwidth()
  endif
  return ind < 0 ? 0 : ind
endfunction
