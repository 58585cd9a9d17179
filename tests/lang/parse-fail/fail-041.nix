with {}; { inherit or; or.x = 1; }
