with {}; a ++ b ++ c
