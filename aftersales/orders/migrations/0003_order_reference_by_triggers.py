"""Lines, payments and shipments keep naming an existing order, checked per statement instead of per row.

A foreign-key constraint checks every inserted row on its own (on PostgreSQL a query and a row lock
per row at commit): about half of the database's work when a large order export is imported. The
triggers below keep the same guarantee at a fraction of the cost:

- rows inserted (or moved to another order) must name an existing order. On PostgreSQL an insert is
  checked once per statement over all its rows, and the orders they name are locked FOR KEY SHARE,
  as a foreign key locks them, so that a concurrent transaction cannot delete one of them before
  this one commits;
- deleting an order deletes its lines, payments and shipments (on_delete=CASCADE; Django's own
  deletion removes them first, so this only matters for deletions in SQL). A line that a case still
  refers to then fails that reference's own foreign key, as before.

SQLite checks row by row (it has no statement triggers); its writes are never large there. An order's
id never changes (Django does not update primary keys), so that case has no trigger.
"""

import django.db.models.deletion
from django.db import migrations, models

CHILDREN = ("orders_orderline", "orders_payment", "orders_shipment")

POSTGRESQL = [
    """
    CREATE FUNCTION orders_rows_name_an_order() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        locked bigint;
    BEGIN
        -- Every order named must be found (and locked): as many orders locked as distinct ones named.
        PERFORM 1 FROM orders_order WHERE id IN (SELECT order_id FROM new_rows) FOR KEY SHARE;
        GET DIAGNOSTICS locked = ROW_COUNT;
        IF locked <> (SELECT count(DISTINCT order_id) FROM new_rows) THEN
            RAISE foreign_key_violation USING MESSAGE = format('%s: a row names an order that does not exist',
                                                               TG_TABLE_NAME);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION orders_row_names_an_order() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM orders_order WHERE id = NEW.order_id FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE foreign_key_violation USING MESSAGE = format('%s: a row names an order that does not exist',
                                                               TG_TABLE_NAME);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION orders_order_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM orders_orderline WHERE order_id IN (SELECT id FROM old_rows);
        DELETE FROM orders_payment WHERE order_id IN (SELECT id FROM old_rows);
        DELETE FROM orders_shipment WHERE order_id IN (SELECT id FROM old_rows);
        RETURN NULL;
    END $$
    """,
    *(sql for table in CHILDREN for sql in (
        f"""CREATE TRIGGER {table}_names_an_order AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION orders_rows_name_an_order()""",
        f"""CREATE TRIGGER {table}_moved_to_an_order AFTER UPDATE OF order_id ON {table} FOR EACH ROW
            WHEN (OLD.order_id IS DISTINCT FROM NEW.order_id) EXECUTE FUNCTION orders_row_names_an_order()""",
    )),
    """CREATE TRIGGER orders_order_deleted AFTER DELETE ON orders_order REFERENCING OLD TABLE AS old_rows
       FOR EACH STATEMENT EXECUTE FUNCTION orders_order_deleted()""",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER orders_order_deleted ON orders_order",
    *(f"DROP TRIGGER {table}_{name} ON {table}" for table in CHILDREN for name in ("names_an_order", "moved_to_an_order")),
    "DROP FUNCTION orders_order_deleted()",
    "DROP FUNCTION orders_row_names_an_order()",
    "DROP FUNCTION orders_rows_name_an_order()",
]

SQLITE = [
    *(sql for table in CHILDREN for sql in (
        f"""CREATE TRIGGER {table}_names_an_order BEFORE INSERT ON {table}
            WHEN NOT EXISTS (SELECT 1 FROM orders_order WHERE id = NEW.order_id)
            BEGIN SELECT RAISE(ABORT, '{table}: a row names an order that does not exist'); END""",
        f"""CREATE TRIGGER {table}_moved_to_an_order BEFORE UPDATE OF order_id ON {table}
            WHEN NOT EXISTS (SELECT 1 FROM orders_order WHERE id = NEW.order_id)
            BEGIN SELECT RAISE(ABORT, '{table}: a row names an order that does not exist'); END""",
    )),
    """CREATE TRIGGER orders_order_deleted AFTER DELETE ON orders_order BEGIN
           DELETE FROM orders_orderline WHERE order_id = OLD.id;
           DELETE FROM orders_payment WHERE order_id = OLD.id;
           DELETE FROM orders_shipment WHERE order_id = OLD.id;
       END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER orders_order_deleted",
    *(f"DROP TRIGGER {table}_{name}" for table in CHILDREN for name in ("names_an_order", "moved_to_an_order")),
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0002_store_copy_without_constraint'),
    ]

    operations = [
        migrations.AlterField(
            model_name='orderline',
            name='order',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='orders.order'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='order',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='payments', to='orders.order'),
        ),
        migrations.AlterField(
            model_name='shipment',
            name='order',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='shipments', to='orders.order'),
        ),
        migrations.RunPython(_run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
                             _run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE})),
    ]
