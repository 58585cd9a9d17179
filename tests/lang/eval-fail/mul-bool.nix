2 * true
