with {}; ''a${x}''
