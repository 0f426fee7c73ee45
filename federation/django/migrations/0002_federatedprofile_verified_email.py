# The address email_verified was written for: an address edited in Django reads as unverified.
# Existing profiles start with none, so their flag holds again from the user's next login.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("federation", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="federatedprofile",
            name="verified_email",
            field=models.TextField(blank=True, null=True),
        ),
    ]
