with {}; ./a/${x}/ 
