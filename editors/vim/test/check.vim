" Headless checks of the CFL vim files: filetype detection, ftplugin settings, syntax
" groups at given positions and brace indentation. Run by run.sh; exits 0 or 1.
let s:dir = expand('<sfile>:p:h')
let s:failures = []

function! s:Fail(msg) abort
  call add(s:failures, a:msg)
endfunction

" The syntax group of `needle` (its occurrence `nth`) on the first line that contains
" `context`, checked at every character of the needle.
function! s:Expect(context, needle, group, ...) abort
  let nth = a:0 ? a:1 : 1
  let lnum = search('\V' . escape(a:context, '\'), 'cnw')
  if lnum == 0
    call s:Fail('no line contains ' . string(a:context))
    return
  endif
  let line = getline(lnum)
  let col = -1
  for i in range(nth)
    let col = stridx(line, a:needle, col + 1)
  endfor
  if col < 0
    call s:Fail(printf('line %d: no %s in %s', lnum, string(a:needle), string(line)))
    return
  endif
  for c in range(col + 1, col + len(a:needle))
    let got = synIDattr(synID(lnum, c, 1), 'name')
    if got !=# a:group
      call s:Fail(printf('line %d col %d (%s in %s): expected %s, got %s',
            \ lnum, c, string(a:needle), string(line), a:group, string(got)))
      return
    endif
  endfor
endfunction

execute 'edit ' . fnameescape(s:dir . '/sample.cfl')

" ftdetect / ftplugin
if &filetype !=# 'cfl' | call s:Fail('filetype is ' . string(&filetype)) | endif
if &commentstring !=# '# %s' | call s:Fail('commentstring is ' . string(&commentstring)) | endif
if !&expandtab || &shiftwidth != 2 | call s:Fail('expected expandtab shiftwidth=2') | endif
if get(b:, 'current_syntax', '') !=# 'cfl' | call s:Fail('syntax/cfl.vim not loaded') | endif

" comments
call s:Expect('# an ordinary comment', 'an ordinary', 'cflComment')
call s:Expect('## A doc comment.', '## A doc', 'cflDocComment')
" imports and extends
call s:Expect('extends "../base.cfl"', 'extends', 'cflInclude')
call s:Expect('extends "../base.cfl"', '../base.cfl', 'cflString')
call s:Expect('import "std/net" as net', 'import', 'cflInclude')
call s:Expect('import "std/net" as net', 'as', 'cflInclude')
call s:Expect('import "std/net" as net', 'net', 'cflNamespace', 2)
" declarations
call s:Expect('input region:', 'input', 'cflDeclaration')
call s:Expect('input region:', 'region', 'cflLetName')
call s:Expect('input region:', 'string', 'cflBuiltinType')
call s:Expect('input token:', 'secret', 'cflBuiltinType')
call s:Expect('input token:', 'from env', 'cflFromEnv')
call s:Expect('let domain', 'let', 'cflDeclaration')
call s:Expect('let domain', 'domain', 'cflLetName')
call s:Expect('type Port', 'type', 'cflDeclaration')
call s:Expect('type Port', 'Port', 'cflTypeDef')
call s:Expect('type Port', 'int', 'cflBuiltinType')
call s:Expect('type Port', 'where', 'cflStatement')
call s:Expect('type Port', 'self', 'cflSelf')
call s:Expect('type Env', 'dev', 'cflString')
call s:Expect('type Env', '"', 'cflQuote')
call s:Expect('type Env', '|', 'cflTypeOperator')
call s:Expect('schema Service {', 'schema', 'cflDeclaration')
call s:Expect('schema Service {', 'Service', 'cflTypeDef')
call s:Expect('name: string where', 'name', 'cflField')
call s:Expect('name: string where', 'matches', 'cflBuiltinFunc')
call s:Expect('tags: list[string]', 'list', 'cflBuiltinType')
call s:Expect('tags: list[string]', 'string', 'cflBuiltinType')
call s:Expect('labels: map[string, net.Port]', 'net.Port', 'cflTypeName')
call s:Expect('password: secret?', '?', 'cflTypeOperator')
call s:Expect('mode: (int | string)?', 'string', 'cflBuiltinType')
call s:Expect('check replicas <= 3', 'check', 'cflStatement')
call s:Expect('check replicas <= 3', 'too many', 'cflString')
call s:Expect('schema Worker extends', 'Worker', 'cflTypeDef')
call s:Expect('schema Worker extends', 'extends', 'cflExtends')
call s:Expect('schema Worker extends', 'Service', 'cflTypeName')
call s:Expect('schema Worker extends', 'queue', 'cflField')
call s:Expect('template Web(', 'template', 'cflDeclaration')
call s:Expect('template Web(', 'Web', 'cflTemplateName')
call s:Expect('template Web(', 'Port', 'cflTypeName')
call s:Expect('template Web(', '8080', 'cflNumber')
" keyword-named fields
call s:Expect('type = "postgres"', 'type', 'cflField')
call s:Expect('env = "prod"', 'env', 'cflField')
call s:Expect('check = true', 'check', 'cflField')
call s:Expect('output = "x"', 'output', 'cflField')
call s:Expect('input = 1', 'input', 'cflField')
call s:Expect('schema = 2', 'schema', 'cflField')
call s:Expect('template = 3', 'template', 'cflField')
call s:Expect('import = 4', 'import', 'cflField')
call s:Expect('extends = 5', 'extends', 'cflField')
call s:Expect('"max-conns" = 100', 'max-conns', 'cflString')
call s:Expect('kind = db.type', 'type', 'cflMember')
" modifiers, unset, paths, extends
call s:Expect('final region', 'final', 'cflStorageClass')
call s:Expect('final region', 'region', 'cflField')
call s:Expect('hidden base_url', 'hidden', 'cflStorageClass')
call s:Expect('unset debug', 'unset', 'cflStatement')
call s:Expect('unset debug', 'debug', 'cflField')
call s:Expect('server.tls.enabled', 'server.tls.enabled', 'cflField')
call s:Expect('server.tags +=', '+=', 'cflOperator')
call s:Expect('billing extends base', 'billing', 'cflField')
call s:Expect('billing extends base', 'extends', 'cflExtends')
call s:Expect('search = Web(', 'Web', 'cflFunction')
call s:Expect('search = Web(', 'replicas', 'cflField')
" numbers
call s:Expect('numbers = [', '42', 'cflNumber')
call s:Expect('numbers = [', '1_000', 'cflNumber')
call s:Expect('numbers = [', '0x1F', 'cflNumber')
call s:Expect('numbers = [', '3.14', 'cflFloat')
call s:Expect('numbers = [', '2.5E6', 'cflFloat')
call s:Expect('numbers = [', '250ms', 'cflDuration')
call s:Expect('numbers = [', '1h30m', 'cflDuration')
call s:Expect('numbers = [', '512MiB', 'cflSize')
call s:Expect('numbers = [', '1GB', 'cflSize')
" strings
call s:Expect('greeting = ', 'hello,', 'cflString')
call s:Expect('greeting = ', '\t', 'cflEscape')
call s:Expect('greeting = ', '\u{1F600}', 'cflEscape')
call s:Expect('greeting = ', '\q', 'cflEscapeError')
call s:Expect('url = "http://', '$<', 'cflSubstDelim')
call s:Expect('url = "http://', 'name', 'cflSubst')
call s:Expect('url = "http://', '>', 'cflOperator', 2)
call s:Expect('url = "http://', '5000', 'cflNumber')
call s:Expect('url = "http://', ')', 'cflSubst')
call s:Expect('url = "http://', '>', 'cflSubstDelim', 3)
call s:Expect('url = "http://', ':', 'cflString', 2)
call s:Expect('url = "http://', 'upper', 'cflBuiltinFunc')
call s:Expect('url = "http://', '-x-', 'cflString')
call s:Expect('url = "http://', '!', 'cflString')
call s:Expect('literal = "write', '$$<', 'cflDollarEscape')
call s:Expect('literal = "write', 'name>', 'cflString')
call s:Expect('path = r"', 'C:\dir\$<x>', 'cflRawString')
call s:Expect('#!/bin/sh', '#!/bin/sh', 'cflMultiString')
call s:Expect('#!/bin/sh', 'name', 'cflSubst')
call s:Expect('#!/bin/sh', '\', 'cflLineJoin')
call s:Expect('exec app', 'exec app', 'cflMultiString')
call s:Expect('C:\dir $<x>', 'C:\dir $<x>', 'cflRawMultiString')
" statements and expressions
call s:Expect('if env == "prod" {', 'if', 'cflConditional')
call s:Expect('if env == "prod" {', 'env', '')
call s:Expect('} else {', 'else', 'cflConditional')
call s:Expect('for k, v in', 'for', 'cflRepeat')
call s:Expect('for k, v in', 'in', 'cflOperatorWord')
call s:Expect('for k, v in', 'a', 'cflField', 1)
call s:Expect('"x_$<k>" = v', 'k', 'cflSubst')
call s:Expect('evens = [x for', 'for', 'cflRepeat')
call s:Expect('level = if', 'then', 'cflConditional')
call s:Expect('level = if', 'null', 'cflNull')
call s:Expect('ok = !flag', 'super', 'cflSelf')
call s:Expect('ok = !flag', 'false', 'cflBoolean')
call s:Expect('up = outer.name', 'outer', 'cflSelf', 2)
call s:Expect('up = outer.name', 'outer', 'cflField', 3)
call s:Expect('output "app.ini"', 'output', 'cflDeclaration')
call s:Expect('output "app.ini"', 'ini', 'cflOutputFormat', 2)
call s:Expect('check len(evens)', 'check', 'cflStatement')
call s:Expect('check len(evens)', 'len', 'cflBuiltinFunc')

" indentation: re-indent a flattened copy and compare with the sample
let s:want = getline(1, '$')
let s:keep = []
for s:i in range(1, line('$'))
  " lines inside multi-line strings keep their own indentation
  call add(s:keep, synIDattr(synID(s:i, 1, 1), 'name') =~# 'MultiString')
  if !s:keep[-1]
    call setline(s:i, substitute(getline(s:i), '^\s\+', '', ''))
  endif
endfor
silent normal! gg=G
let s:got = getline(1, '$')
for i in range(len(s:want))
  if s:got[i] !=# s:want[i]
    call s:Fail(printf('indent line %d: expected %s, got %s', i + 1, string(s:want[i]),
          \ string(s:got[i])))
  endif
endfor

if empty(s:failures)
  call writefile(['vim: all checks passed'], '/dev/stdout', 'a')
  qall!
endif
call writefile(s:failures, '/dev/stdout', 'a')
cquit!
