-- leaf7 obfuscation preset "light": LuaSrcDiet only (every preset's first step, see
-- ../obfuscate.lua): locals renamed, comments and layout removed; literals as they were.
return { strings = false, numbers = false }
