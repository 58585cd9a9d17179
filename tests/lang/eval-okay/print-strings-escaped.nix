[ "a\"b" "c\\d" "e$f" "${"$"}{g}" "h\ni" "tab\t" "cr\r" ]
