[ "a\nb" "tab\there" "cr\r" "quote\"q" "back\\slash" "dollar\${x}" "\$" "$" "$$" "a$b" "\a\b\c" "\{" ]
