-- Innen: control-list items from POM as well as from statements (no statement then), and resolved once:
-- booked onto a payment reference or handled with a note, by whom and when; open items indexed for the Finance page.
-- For a database made before 2026-12-05; run once, in one transaction.
-- (Items written before it get the import time of their statement as created_at.)
BEGIN;
ALTER TABLE control_list_item ALTER COLUMN statement_id DROP NOT NULL;
ALTER TABLE control_list_item ADD COLUMN source VARCHAR(20) DEFAULT 'bank_statement' NOT NULL;
ALTER TABLE control_list_item ADD COLUMN pom_event_id INTEGER;
ALTER TABLE control_list_item ADD COLUMN created_at TIMESTAMP WITH TIME ZONE;
UPDATE control_list_item SET created_at = bank_statement.imported_at
	FROM bank_statement WHERE bank_statement.id = control_list_item.statement_id;
UPDATE control_list_item SET created_at = CURRENT_TIMESTAMP WHERE created_at IS NULL;
ALTER TABLE control_list_item ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP;
ALTER TABLE control_list_item ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE control_list_item ADD COLUMN resolved_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE control_list_item ADD COLUMN resolved_by VARCHAR(250);
ALTER TABLE control_list_item ADD COLUMN resolution VARCHAR(10);
ALTER TABLE control_list_item ADD COLUMN resolution_note TEXT;
ALTER TABLE control_list_item ADD COLUMN resolution_payment_reference_id INTEGER;
ALTER TABLE control_list_item ADD CONSTRAINT ck_control_list_item_source CHECK ((source = 'bank_statement' OR source = 'pom'));
ALTER TABLE control_list_item ADD CONSTRAINT ck_control_list_item_statement CHECK (statement_id IS NOT NULL OR source <> 'bank_statement');
ALTER TABLE control_list_item ADD CONSTRAINT ck_control_list_item_resolution CHECK (resolution IS NULL OR (resolution = 'booked' OR resolution = 'handled'));
ALTER TABLE control_list_item ADD CONSTRAINT ck_control_list_item_resolved CHECK ((resolved_at IS NULL AND resolution IS NULL) OR (resolved_at IS NOT NULL AND resolution IS NOT NULL AND resolved_by IS NOT NULL));
ALTER TABLE control_list_item ADD CONSTRAINT fk_control_list_item_pom_event_id_pom_event FOREIGN KEY(pom_event_id) REFERENCES pom_event (id);
ALTER TABLE control_list_item ADD CONSTRAINT fk_control_list_item_resolution_payment_reference_id_pa_42fc FOREIGN KEY(resolution_payment_reference_id) REFERENCES payment_reference (id);
CREATE INDEX ix_control_list_item_open ON control_list_item (created_at, id) WHERE resolved_at IS NULL;
COMMIT;
