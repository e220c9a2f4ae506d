DROP TRIGGER report_postings ON postings;
DROP FUNCTION report_postings();
DROP INDEX orders_village_placed_idx;
DROP TABLE report_spend_daily;
DROP TABLE report_holder_daily;
DROP TABLE report_aid_spent_daily;
DROP TABLE report_ledger_daily;
DROP TABLE report_product_daily;
DROP TABLE report_trade_daily;
