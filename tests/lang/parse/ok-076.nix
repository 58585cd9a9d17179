''
    a''\nb
  c''
