"""POM: payment requests with QR codes, callbacks and delivery reports (client, simulator, signing)."""
