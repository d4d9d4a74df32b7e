# Helper for E0106_import_cycle.eq: imports it back.
import "../E0106_import_cycle.eq"

rep Shared = 8x0e
