-- Innen: invoices (documents of sealed references), transaction-cost tariffs, and what a mailing journals.
-- For a database made before 2026-12-04; run once, in one transaction.
-- (On an upgraded database the two new unique columns are guarded by unique indexes of the constraints' names.)
BEGIN;
CREATE TABLE transaction_cost (
	id SERIAL NOT NULL, 
	financial_system_id INTEGER NOT NULL, 
	transaction_code VARCHAR(40) NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	description VARCHAR(200), 
	CONSTRAINT pk_transaction_cost PRIMARY KEY (id), 
	CONSTRAINT uq_transaction_cost_financial_system_id_transaction_code UNIQUE (financial_system_id, transaction_code), 
	CONSTRAINT ck_transaction_cost_amount_positive CHECK (amount > 0), 
	CONSTRAINT fk_transaction_cost_financial_system_id_financial_system FOREIGN KEY(financial_system_id) REFERENCES financial_system (id)
);
CREATE TABLE invoice (
	id SERIAL NOT NULL, 
	payment_reference_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	document_id VARCHAR(100) NOT NULL, 
	template VARCHAR(120) NOT NULL, 
	language VARCHAR(2) NOT NULL, 
	channel VARCHAR(5) NOT NULL, 
	postal_address_id INTEGER, 
	amount NUMERIC(12, 2) NOT NULL, 
	pom_payment_request_id INTEGER, 
	file_path VARCHAR(500) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	pages INTEGER NOT NULL, 
	print_day DATE NOT NULL, 
	made_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	made_by VARCHAR(250) NOT NULL, 
	withdrawn_at TIMESTAMP WITH TIME ZONE, 
	withdrawn_reason VARCHAR(200), 
	CONSTRAINT pk_invoice PRIMARY KEY (id), 
	CONSTRAINT ck_invoice_channel CHECK ((channel = 'email' OR channel = 'paper' OR channel = 'both' OR channel = 'none')), 
	CONSTRAINT uq_invoice_payment_reference_id_version UNIQUE (payment_reference_id, version), 
	CONSTRAINT fk_invoice_payment_reference_id_payment_reference FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT uq_invoice_document_id UNIQUE (document_id), 
	CONSTRAINT fk_invoice_pom_payment_request_id_pom_payment_request FOREIGN KEY(pom_payment_request_id) REFERENCES pom_payment_request (id)
);
CREATE INDEX ix_invoice_payment_reference_id ON invoice (payment_reference_id);
CREATE INDEX ix_invoice_print_day ON invoice (print_day);
CREATE UNIQUE INDEX uq_invoice_current_reference ON invoice (payment_reference_id) WHERE withdrawn_at IS NULL;
ALTER TABLE debt_line ADD COLUMN cost_of_reference_id INTEGER REFERENCES payment_reference (id);
ALTER TABLE debt_line ADD COLUMN reversed_at TIMESTAMP WITH TIME ZONE;
CREATE UNIQUE INDEX uq_debt_line_cost_of_reference_id ON debt_line (cost_of_reference_id);
ALTER TABLE sent_document ADD COLUMN invoice_id INTEGER REFERENCES invoice (id);
ALTER TABLE sent_document ADD COLUMN pdf_sha256 VARCHAR(64);
ALTER TABLE sent_document ADD COLUMN recipients JSON;
ALTER TABLE sent_document ADD COLUMN accepted_at TIMESTAMP WITH TIME ZONE;
CREATE UNIQUE INDEX uq_sent_document_invoice_id ON sent_document (invoice_id);
COMMIT;
