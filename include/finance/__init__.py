"""Money, reference numbers, debts, payment references and the shared database."""
