-- Placeholder on the accounts branch only: number 5 belongs to the storage branch's migration,
-- which replaces this file when the branches merge (delete this file then).
SELECT 1;
