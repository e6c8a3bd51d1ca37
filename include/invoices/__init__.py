"""Invoices: the document a payer receives, its QR codes, and its delivery."""
