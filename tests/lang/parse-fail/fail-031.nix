a@
