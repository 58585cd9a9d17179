''
	  tab
  two
''
