" Vim syntax file
" Language:    CFL, the typed configuration language of cfglang
" Filenames:   *.cfl
" Maintainer:  the cfglang authors

if exists('b:current_syntax')
  finish
endif
let s:cpo_save = &cpo
set cpo&vim

syn case match
" Multi-line strings can start anywhere above; CFL files are small.
syn sync fromstart

" ---- comments -----------------------------------------------------------------------------
syn keyword cflTodo contained TODO FIXME XXX NOTE
syn match cflComment "#.*$" contains=cflTodo,@Spell
syn match cflDocComment "##.*$" contains=cflTodo,@Spell

" ---- reserved words that are never names ---------------------------------------------------
syn keyword cflConditional if then else
syn keyword cflRepeat for
syn keyword cflOperatorWord in
syn keyword cflStorageClass final hidden
syn keyword cflStatement unset where
syn keyword cflDeclaration let
syn keyword cflBoolean true false
syn keyword cflNull null
syn keyword cflSelf self super
" `outer` names the enclosing scope only before `.name` (docs/language.md §3.6); elsewhere
" it is an ordinary name, so it is a match, not a keyword.
syn match cflSelf "\<outer\ze\s*\."

" ---- numbers (later items win at the same position) ----------------------------------------
syn match cflNumber "\<\d[0-9_]*\>"
syn match cflNumber "\<0[xX][0-9A-Fa-f_]\+\>"
syn match cflFloat "\<\d[0-9_]*\.\d[0-9_]*\%([eE][+-]\=\d\+\)\=\>"
syn match cflFloat "\<\d[0-9_]*[eE][+-]\=\d\+\>"
syn match cflDuration "\<\%(\d\+\%(ms\|d\|h\|m\|s\)\)\+\>"
syn match cflSize "\<\d\+\%([KMGTP]i\=B\|B\)\>"

" ---- calls, member access, operators -------------------------------------------------------
syn match cflFunction "\<\h\w*\ze\s*("
syn match cflBuiltinFunc "\<\%(len\|keys\|values\|matches\|startswith\|endswith\|contains\|lower\|upper\|trim\|split\|join\|replace\|min\|max\|sum\|all\|any\|unique\|sort\|range\|int\|float\|string\|seconds\|millis\|bytes\|default\)\ze\s*("
syn match cflOperator "[-+*/%!<>=|&?]"
syn match cflDelimiter "[,;]"

" ---- contextual keywords: `type check output input schema template import extends` are
" field names unless a declaration follows; `as from env` only mean something in place. ------
syn match cflInclude "\<import\>\ze\s*r\=\""
syn match cflInclude "\<extends\>\ze\s*r\=\""
syn match cflInclude "\%(\<import\s\+r\=\"[^\"]*\"\s*\)\@<=\<as\>"
syn match cflExtends "\<extends\>\ze\s\+\h"
syn match cflDeclaration "\<\%(input\|type\|schema\|template\)\>\ze\s\+\h"
syn match cflDeclaration "\<output\>\ze\s*r\=\""
syn match cflStatement "\<check\>\ze\s*\%([^=.:{+ \t]\|==\|+[^=]\)"
syn match cflFromEnv "\<from\s\+env\>"
syn match cflNamespace "\%(\<import\s\+r\=\"[^\"]*\"\s\+as\s\+\)\@<=\h\w*"

" ---- declared names ------------------------------------------------------------------------
syn match cflTypeDef "\%(\<\%(type\|schema\)\s\+\)\@<=\h\w*"
syn match cflTypeName "\%(\<schema\s\+\h\w*\s\+extends\s\+\)\@<=\h\w*\%(\.\h\w*\)*"
syn match cflTemplateName "\%(\<template\s\+\)\@<=\h\w*"
syn match cflLetName "\%(\<\%(let\|input\)\s\+\)\@<=\h\w*"

" A field: a key path at the start of a statement, before `= += : { extends where`.
syn match cflField "\%(^\s*\|[{;]\s*\|\<\%(final\|hidden\)\s\+\)\@<=\h\w*\%(\s*\.\s*\h\w*\)*\ze\s*\%(+\==\%([^=]\|$\)\|[:{]\|\<extends\>\|\<where\>\)"
syn match cflField "\%(\<unset\s\+\)\@<=\h\w*\%(\.\h\w*\)*"
" `.name` reads a field, whatever the word (`db.type`, `self.port`).
syn match cflMember "\%(\.\s*\)\@<=\h\w*"

" ---- types: after `:`, and after `type Name =` ---------------------------------------------
syn keyword cflBuiltinType contained bool int float string duration size any secret list map
syn keyword cflTypeNull contained null
syn match cflTypeName contained "\<\h\w*\%(\.\h\w*\)*"
syn match cflTypeOperator contained "[|?-]"
syn match cflOutputFormat contained "\%(\<output\s\+r\=\"[^\"]*\"\s*:\s*\)\@<=\h\w*"
syn region cflTypeArgs contained matchgroup=cflDelimiter start="\[" end="\]" contains=@cflType,cflDelimiter
syn region cflTypeParen contained matchgroup=cflDelimiter start="(" end=")" contains=@cflType
syn cluster cflType contains=cflBuiltinType,cflTypeNull,cflTypeName,cflTypeOperator,cflTypeArgs,cflTypeParen,cflString,cflRawString,cflNumber,cflBoolean,cflComment,cflOutputFormat
syn region cflTypeAnnot matchgroup=cflDelimiter start=":" end="\ze\s*\%(+\==\|[{;})#,]\|\<where\>\|\<from\>\)" end="\%(|\s*\)\@<!$" contains=@cflType
syn region cflTypeAnnot matchgroup=cflOperator start="\%(\<type\s\+\h\w*\s*\)\@<==" end="\ze\s*\%([;}#]\|\<where\>\)" end="\%(|\s*\)\@<!$" contains=@cflType

" ---- strings -------------------------------------------------------------------------------
syn match cflEscapeError contained "\\."
syn match cflEscape contained +\\\%([ntr\\"$0]\|u{\x\{1,6}}\|u\x\{4}\)+
syn match cflLineJoin contained "\\$"
syn match cflDollarEscape contained "\$\$<"
syn cluster cflStringItems contains=cflEscapeError,cflEscape,cflDollarEscape,cflSubst,@Spell
syn region cflString matchgroup=cflQuote start=+"+ skip=+\\\\\|\\"+ end=+"+ end=+$+ contains=@cflStringItems
syn region cflMultiString matchgroup=cflQuote start=+"""+ end=+"""+ contains=@cflStringItems,cflLineJoin
syn region cflRawString matchgroup=cflQuote start=+\<r"+ end=+"+ end=+$+
syn region cflRawMultiString matchgroup=cflQuote start=+\<r"""+ end=+"""+

" `$<expr>` ends at the first `>` outside ( ) [ ] and nested strings.
syn cluster cflExpr contains=cflNumber,cflFloat,cflDuration,cflSize,cflString,cflRawString,cflBoolean,cflNull,cflSelf,cflConditional,cflRepeat,cflOperatorWord,cflFunction,cflBuiltinFunc,cflMember,cflOperator,cflDelimiter,cflSubstGroup
syn region cflSubstGroup contained transparent start="[(\[]" end="[)\]]" end="$" contains=@cflExpr
syn region cflSubst contained matchgroup=cflSubstDelim start="\$<" end=">" end="$" contains=@cflExpr

" ---- highlight links -----------------------------------------------------------------------
hi def link cflTodo Todo
hi def link cflComment Comment
hi def link cflDocComment SpecialComment
hi def link cflConditional Conditional
hi def link cflRepeat Repeat
hi def link cflOperatorWord Operator
hi def link cflStorageClass StorageClass
hi def link cflStatement Statement
hi def link cflDeclaration Keyword
hi def link cflInclude Include
hi def link cflExtends StorageClass
hi def link cflFromEnv Keyword
hi def link cflNamespace Identifier
hi def link cflBoolean Boolean
hi def link cflNull Constant
hi def link cflTypeNull Type
hi def link cflSelf Special
hi def link cflNumber Number
hi def link cflFloat Float
hi def link cflDuration Number
hi def link cflSize Number
hi def link cflFunction Function
hi def link cflBuiltinFunc Function
hi def link cflOperator Operator
hi def link cflTypeOperator Operator
hi def link cflDelimiter Delimiter
hi def link cflTypeDef Typedef
hi def link cflTypeName Type
hi def link cflBuiltinType Type
hi def link cflOutputFormat Constant
hi def link cflTemplateName Function
hi def link cflLetName Identifier
hi def link cflField Identifier
hi def link cflString String
hi def link cflMultiString String
hi def link cflRawString String
hi def link cflRawMultiString String
hi def link cflQuote String
hi def link cflEscape SpecialChar
hi def link cflLineJoin SpecialChar
hi def link cflDollarEscape SpecialChar
hi def link cflEscapeError Error
hi def link cflSubstDelim Special

let b:current_syntax = 'cfl'
let &cpo = s:cpo_save
unlet s:cpo_save
