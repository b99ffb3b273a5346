_instruments = ("PyMySQL < 2",)
