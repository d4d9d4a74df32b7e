# Helper for E0109_conflicting_groups.eq: a library written for SO3.
group SO3

rep Hidden = 16x0 + 8x1
