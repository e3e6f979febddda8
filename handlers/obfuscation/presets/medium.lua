-- leaf7 obfuscation preset "medium": light, and every string literal a call to a decoder on
-- its encoded bytes (a random key per revision), so no string reads in the clear.
return { strings = "inline", numbers = false }
