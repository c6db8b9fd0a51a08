"""Wire shapes: the only code that knows JSON/CSV (and later XML) layouts."""
