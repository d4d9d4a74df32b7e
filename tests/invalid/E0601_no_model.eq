group O3

rep Hidden = 16x0e + 8x1o
