-- Innen: bank files wait in staging for finance's approval (per hub: approval_required, four_eyes; both on),
-- and each approval or rejection is kept with who decided, when, why and what was shown.
-- For a database made before 2026-12-05 (after 2026-12-05_control_list_resolution); run once, in one transaction.
BEGIN;
ALTER TABLE bank_hub ADD COLUMN approval_required BOOLEAN DEFAULT true NOT NULL;
ALTER TABLE bank_hub ADD COLUMN four_eyes BOOLEAN DEFAULT true NOT NULL;
CREATE TABLE bank_file_approval (
	id SERIAL NOT NULL, 
	run_id INTEGER NOT NULL, 
	attempt INTEGER NOT NULL, 
	status VARCHAR(10) NOT NULL, 
	export_format VARCHAR(10) NOT NULL, 
	staged_path VARCHAR(500) NOT NULL, 
	file_sha256 VARCHAR(64) NOT NULL, 
	transaction_count INTEGER NOT NULL, 
	total_amount NUMERIC(12, 2) NOT NULL, 
	summary JSON NOT NULL, 
	four_eyes BOOLEAN NOT NULL, 
	requested_by VARCHAR(250), 
	requested_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	airflow_task VARCHAR(500), 
	decided_by VARCHAR(250), 
	decided_at TIMESTAMP WITH TIME ZONE, 
	reason TEXT, 
	CONSTRAINT pk_bank_file_approval PRIMARY KEY (id), 
	CONSTRAINT uq_bank_file_approval_run_id_attempt UNIQUE (run_id, attempt), 
	CONSTRAINT ck_bank_file_approval_status CHECK ((status = 'waiting' OR status = 'approved' OR status = 'rejected')), 
	CONSTRAINT ck_bank_file_approval_decided CHECK ((status = 'waiting') = (decided_at IS NULL)), 
	CONSTRAINT fk_bank_file_approval_run_id_collection_run FOREIGN KEY(run_id) REFERENCES collection_run (id)
);
CREATE UNIQUE INDEX ux_bank_file_approval_waiting ON bank_file_approval (run_id) WHERE status = 'waiting';
COMMIT;
