# Helper for E0001_error_in_imported_file.eq: a syntax error in an imported file.
rep Hidden = 16x0e + 8x1o
rep Edge = 8x0e 8x1o
