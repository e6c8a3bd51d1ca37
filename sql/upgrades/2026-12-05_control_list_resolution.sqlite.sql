-- Innen: control-list items from POM as well as from statements (no statement then), and resolved once:
-- booked onto a payment reference or handled with a note, by whom and when; open items indexed for the Finance page.
-- For a database made before 2026-12-05; run once, in one transaction.
-- (SQLite cannot make a column nullable: the table is made anew and its rows copied; items written before it get
-- the import time of their statement as created_at. No other table refers to control_list_item.)
BEGIN;
ALTER TABLE control_list_item RENAME TO control_list_item_before;
DROP INDEX ix_control_list_item_statement_id;
CREATE TABLE control_list_item (
	id INTEGER NOT NULL, 
	statement_id INTEGER, 
	bank_entry_id INTEGER, 
	kind VARCHAR(30) NOT NULL, 
	reason TEXT NOT NULL, 
	action TEXT NOT NULL, 
	amount NUMERIC(12, 2), 
	details JSON, 
	source VARCHAR(20) DEFAULT 'bank_statement' NOT NULL, 
	pom_event_id INTEGER, 
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, 
	resolved_at DATETIME, 
	resolved_by VARCHAR(250), 
	resolution VARCHAR(10), 
	resolution_note TEXT, 
	resolution_payment_reference_id INTEGER, 
	CONSTRAINT pk_control_list_item PRIMARY KEY (id), 
	CONSTRAINT ck_control_list_item_source CHECK ((source = 'bank_statement' OR source = 'pom')), 
	CONSTRAINT ck_control_list_item_statement CHECK (statement_id IS NOT NULL OR source <> 'bank_statement'), 
	CONSTRAINT ck_control_list_item_resolution CHECK (resolution IS NULL OR (resolution = 'booked' OR resolution = 'handled')), 
	CONSTRAINT ck_control_list_item_resolved CHECK ((resolved_at IS NULL AND resolution IS NULL) OR (resolved_at IS NOT NULL AND resolution IS NOT NULL AND resolved_by IS NOT NULL)), 
	CONSTRAINT fk_control_list_item_statement_id_bank_statement FOREIGN KEY(statement_id) REFERENCES bank_statement (id), 
	CONSTRAINT fk_control_list_item_bank_entry_id_bank_entry FOREIGN KEY(bank_entry_id) REFERENCES bank_entry (id), 
	CONSTRAINT fk_control_list_item_pom_event_id_pom_event FOREIGN KEY(pom_event_id) REFERENCES pom_event (id), 
	CONSTRAINT fk_control_list_item_resolution_payment_reference_id_payment_reference FOREIGN KEY(resolution_payment_reference_id) REFERENCES payment_reference (id)
);
INSERT INTO control_list_item (id, statement_id, bank_entry_id, kind, reason, action, amount, details, created_at)
	SELECT item.id, item.statement_id, item.bank_entry_id, item.kind, item.reason, item.action, item.amount, item.details,
	       COALESCE(bank_statement.imported_at, CURRENT_TIMESTAMP)
	FROM control_list_item_before AS item LEFT JOIN bank_statement ON bank_statement.id = item.statement_id
	ORDER BY item.id;
DROP TABLE control_list_item_before;
CREATE INDEX ix_control_list_item_open ON control_list_item (created_at, id) WHERE resolved_at IS NULL;
CREATE INDEX ix_control_list_item_statement_id ON control_list_item (statement_id);
COMMIT;
