"""SEPA direct debit: mandates, collection runs, bank files."""
