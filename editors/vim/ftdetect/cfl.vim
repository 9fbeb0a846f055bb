" CFL (cfglang) configuration files
autocmd BufNewFile,BufRead *.cfl setfiletype cfl
