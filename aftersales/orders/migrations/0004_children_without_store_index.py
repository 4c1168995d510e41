"""The copied `store` of lines, payments and shipments loses its index (see the comment in models.py).

SQLite rebuilds a table to change it, and a rebuild drops the table's triggers (and trips over the
order's trigger that names it), so the triggers of 0003 are taken down first and put back after.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

_triggers = import_module("aftersales.orders.migrations.0003_order_reference_by_triggers")
SQLITE_DOWN = {"sqlite": _triggers.SQLITE_REVERSE}
SQLITE_UP = {"sqlite": _triggers.SQLITE}


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0003_order_reference_by_triggers'),
        ('stores', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(_triggers._run(SQLITE_DOWN), _triggers._run(SQLITE_UP)),
        migrations.AlterField(
            model_name='orderline',
            name='store',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.store'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='store',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.store'),
        ),
        migrations.AlterField(
            model_name='shipment',
            name='store',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.store'),
        ),
        migrations.RunPython(_triggers._run(SQLITE_UP), _triggers._run(SQLITE_DOWN)),
    ]
