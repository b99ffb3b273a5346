_instruments: tuple[str, ...] = ()
_instruments_any = ("psycopg2 >= 2.8", "psycopg2-binary >= 2.8")
