-- leaf7 obfuscation preset "strong": medium, with the strings in one shuffled table (a literal
-- is the decoder called with its index) and integer literals written as sums.
return { strings = "table", numbers = true }
