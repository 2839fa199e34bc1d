"""Resource families. Each is a Step: observe (read-only), plan (pure), apply, destroy."""
