_instruments = ("psycopg >= 3.1",)
