group O3

rep Hidden = 32x0e + 32x1o +
