complete --keep-order --exclusive --command autheona --arguments "(COMPLETE=fish autheona -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
