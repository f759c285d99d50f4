"""Silver: bronze feeds conformed into customers, identities, products, orders, order lines, interactions."""
