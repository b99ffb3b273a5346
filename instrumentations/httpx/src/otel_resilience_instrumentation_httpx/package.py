_instruments = ("httpx >= 0.20, < 1",)
