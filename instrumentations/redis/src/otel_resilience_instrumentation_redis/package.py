_instruments = ("redis >= 4.3",)
