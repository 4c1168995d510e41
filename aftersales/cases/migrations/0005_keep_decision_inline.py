"""On PostgreSQL, a case's policy decision stays in the case's own row, compressed with lz4.

A decision is about 4.3 kB of JSON (every explanation in both languages, with its source). PostgreSQL
compresses a row over 2 kB and, when the compressed value still does not fit its 2 kB target, moves it
to the table's TOAST relation: two more rows and two more index entries for every case opened, and
12-16 kB of WAL per case instead of 6.7-7.5 kB. With a 4 kB target the compressed decision (about
2.3 kB) stays inline, three cases to a page. lz4 compresses several times faster than the default pglz;
where the server was built without it, the default stays. Cases written before keep their form until
they are rewritten.

Nothing changes for other databases, and the models are untouched.
"""

from django.db import migrations


def _has_lz4(cursor) -> bool:
    cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    row = cursor.fetchone()
    return bool(row and row[0])


def keep_inline(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("cases", "Case")._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} SET (toast_tuple_target = 4080)")
    with schema_editor.connection.cursor() as cursor:
        if _has_lz4(cursor):
            schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN decision SET COMPRESSION lz4")


def back_to_defaults(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("cases", "Case")._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")
    schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN decision SET COMPRESSION DEFAULT")


class Migration(migrations.Migration):

    dependencies = [
        ("cases", "0004_drop_indexes_covered_by_others"),
    ]

    operations = [
        migrations.RunPython(keep_inline, back_to_defaults, elidable=False),
    ]
