x: 
